"""A worker process: one direction of the engine, from one interface to the other.

It sleeps in `select` until a frame arrives, a message comes down the pipe, or the pipeline's
next packet is due, so it costs nothing when idle. While its links hold frames it wakes once
per release, reading the frames that came meanwhile then (their kernel stamps keep their
arrival times); a link that only delays keeps them in bulk where they were read
(`Intake._hold_batch`). It polls only with `run --precise`, for short, bounded spells while
traffic flows: the last moments before a release (as long as this machine's timers run late,
`WakeMargin`), yielding the CPU to others between tries; and on a transparent link with
sparse frames, up to POLL_WINDOW after each frame, so that the next one is not held up by a
wake-up (see `Waits.stream_straight`). While frames stream through and nothing is held,
it reads with blocking reads instead of `select` (see `loop`), on a transparent link many
frames a system call when they come fast (`engine.kernel.mmsg`). Stats go up the pipe at the
pace the supervisor sets (`StatsPace`), through an outbox that never waits for the supervisor
(`engine.daemon.channel`); they are its heartbeat. All shaping decisions are made by the pure
`DirectionPipeline`.

The rooms, each a module: `process` (the entry point), `loop` (a round: wait, then serve),
`waits` (the ways to wait), `intake` (reading batches into the pipeline), `sender` (frames
out), `supervisor_side` (reports up, control down), `interfaces` (open, lose, wait for them),
`forwarder` (all of them on one object), `state` (what they share). Frames are prepared for
the pipeline a batch at a time by the core (`engine.core.batch`).
"""

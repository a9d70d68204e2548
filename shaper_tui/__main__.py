from shaper_tui.cli import main

main()

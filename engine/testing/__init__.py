"""What users' own tests use: the `shaped_link` pytest fixture and the LinkshaperContainer for
testcontainers.
"""

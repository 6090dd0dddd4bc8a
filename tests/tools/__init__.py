"""Test tools that run on their own (python3 -m tests.tools.<name>), e.g. the crash harness."""

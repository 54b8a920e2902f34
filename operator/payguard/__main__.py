"""Lets `python -m payguard` behave like the `payguard` command."""

from payguard.cli import main

raise SystemExit(main())

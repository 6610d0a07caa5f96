"""mptcp-embedded lab: namespaces, link emulator, kernel peers (see README.md)."""

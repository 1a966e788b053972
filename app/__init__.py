"""The Egenvård sync service: all I/O (database, HTTP, auth, audit, push, scheduler, CLI)."""

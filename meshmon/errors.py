"""Errors that stop the collector from starting, with a message for the person running it."""


class StartupError(Exception):
    """The collector cannot start (a port is taken, a server refuses); the message says why
    and what to change."""


class ServiceFailed(Exception):
    """A task of the running collector failed, so it stopped (the log has the traceback)."""

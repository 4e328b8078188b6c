"""Test-session setup shared by the Python tests and the notebooks that nbval runs."""

import os

# The notebooks use the bundled sandbox unless INTERCOM_TOKEN is set, and their stored outputs
# are the sandbox's: a real token in the developer's shell must not send them to Intercom.
os.environ.pop("INTERCOM_TOKEN", None)
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_configure(config):
    """Ctrl-C tests send real SIGINTs, to this process and to child processes. Started with
    SIGINT ignored (``nohup``, ``trap '' INT``, some CI runners), Python keeps it ignored and so
    do the children it starts (an ignored signal survives exec). So the session takes Python's
    own handler: a SIGINT is a KeyboardInterrupt here, and children start with the default."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)

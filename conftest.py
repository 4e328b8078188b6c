"""Test-session setup shared by the Python tests and the notebooks that nbval runs."""

import os

# The notebooks use the bundled sandbox unless INTERCOM_TOKEN is set, and their stored outputs
# are the sandbox's: a real token in the developer's shell must not send them to Intercom.
os.environ.pop("INTERCOM_TOKEN", None)
os.environ.setdefault("MPLBACKEND", "Agg")

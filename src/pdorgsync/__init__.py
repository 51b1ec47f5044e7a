"""pdorgsync: PagerDuty organisation as code, coverage audit and incident auto-engagement."""

__version__ = "0.1.0"

"""cloudlabs' LocalStack extension.

Loaded only inside the emulator's own virtualenv (see ``emulator/pyproject.toml``):

- :mod:`cloudlabs_emulator.providers` serves, from LocalStack's bundled moto, the AWS APIs that the
  community build of LocalStack 2026.3.0 lacks or can only serve after a download at first use.
- :mod:`cloudlabs_emulator.lambda_executor` runs Lambda functions as local subprocesses, so Lambda
  works without Docker.

The APIs it serves are the entry points in ``emulator/pyproject.toml``; the launcher
(``grader/emulator/embedded.py``) sets ``PROVIDER_OVERRIDE_<API>=cloudlabs`` for each.
"""

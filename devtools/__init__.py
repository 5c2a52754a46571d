"""Local stand-ins and throwaway servers that both the tests and the benchmarks run against.

Never deployed and never imported by the site: servers.py (PostgreSQL, Celery workers, moto on
free ports), ses_sink.py (a local SESv2-compatible endpoint), fake_openai.py (a local
Responses-API server). Stand-ins only tests use stay in tests/support/. run.py is what `make run`
runs: the site on one machine for a person, from the Procfile.
"""

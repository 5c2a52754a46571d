"""The daily email: subject, plain text and inlined HTML, from templates/emails/daily_*.

Most of an email is the same for every reader of one forecast (sign and date). That part is
rendered, and its CSS inlined, once per forecast (`DailyEmailRenderer` keeps it for one send
batch). It carries placeholders such as `[[hz:unsubscribe_url]]` and marked topic sections;
each reader's email is then made by string substitution only: their topics, their links, and
the sky events' times in their own time zone.

The package, by job:

- facts.py: a forecast's sky facts as lines, their instants kept apart (the pages use it too);
- placeholders.py: the [[hz:...]] placeholders and compiled templates filled per reader;
- render.py: a forecast's shared parts, rendered once (templates, CSS inlined);
- mime.py: the MIME fast path, a forecast's email serialised once and filled per reader;
- cache.py: rendered forecasts kept per process, keyed by what rendering reads;
- reader.py: `DailyEmailRenderer`, one reader's email from the shared parts.
"""

"""The reviewer web console, served by ``aegisflow serve`` under ``/console``.

Plain server-rendered HTML (Jinja2, escaping everything) with one small script and no
inline code, under a strict Content-Security-Policy. Reviewers and auditors sign in with
their API key, which is exchanged for a session cookie; the key never appears in a URL,
a page or a log. Every state change carries the session's CSRF token.
"""

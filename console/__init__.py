"""The browser console: the complaint platform in the browser, served by the same process as the API.

Server-rendered Jinja2 pages with htmx partials (``jinja2-fragments`` renders one block of a page
as the partial), in Chinese (zh-CN) and English (gettext catalogs in ``messages/``). The console
sits between ``api`` and ``runtime``: it calls the Engine's services like the API does, never
the HTTP API and never SQL of its own; the policies decide what a user may do and the pages
render their answer (``allowed_actions``).

``app.py`` builds the console (a FastAPI sub-application mounted at ``/console``);
``session.py`` signs people in (cookie or ``Authorization: Bearer``) and checks CSRF tokens;
``i18n.py`` and ``formatting.py`` choose the language and format dates and money;
``texts.py`` is the one place case texts pass through on their way to a page; ``views.py``
turns the services' answers into what the templates show; ``routes/`` holds the pages.
"""

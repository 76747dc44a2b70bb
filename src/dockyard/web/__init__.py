"""The web UI: a single-page application over ``/api/v1``, served by Dockyard itself at ``/``.

Why a single-page app over the REST API rather than server-rendered pages: every screen is
then a client of the same API as the CLI, so the UI can never show or do what the API would
refuse, and anything the UI does, a script can do too. Why Preact with ``htm`` and no build
step: the UI needs live parts (build logs, upload progress, tables that page and sort on the
server) that templates would rebuild by hand, yet a bundler would put a Node build between
editing a file and reloading the page. Preact (4 kB) and htm (tagged templates instead of JSX)
load as ES modules through an import map, straight from the npm packages pinned by
``web/package-lock.json``; ``scripts/setup.sh`` installs them and copies the three files into
``static/vendor/`` (not committed). Nothing is loaded from the internet: the pages set a
Content-Security-Policy that allows only this origin.

:mod:`.app` serves the page shell and the static files.
"""

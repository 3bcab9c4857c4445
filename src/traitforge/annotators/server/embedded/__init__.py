"""Code that runs inside the Argilla *server's* virtual environment, never in traitforge's.

`launch.py` is executed there as a script (`SERVER_PYTHON launch.py prepare|serve`); each
serving process (uvicorn's workers start from an import string) builds its app with `app.py`,
which imports `hotspots.py` and `sql_engine.py` beside it as top-level modules, and
`sql_engine.py` imports `search_rows.py` the same way.
None imports anything from traitforge, and traitforge never imports them: argilla_server is not
installed in the project environment, and keeping the two apart means the server's pins (typer
0.9, click < 8.2, pydantic 2.9) never have to agree with the project's. Only the unit tests
import `search_rows`, which needs no argilla_server, from the project environment.
"""

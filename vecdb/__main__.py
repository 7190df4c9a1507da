from vecdb.cli import app

app()

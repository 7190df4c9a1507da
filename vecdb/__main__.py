from vecdb.cli.main import app

app()

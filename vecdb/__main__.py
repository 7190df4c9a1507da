from vecdb.cli.main import app

if __name__ == "__main__":  # (not when a spawned helper process imports it as __mp_main__)
    app()

"""The engine: claims due work from the database and moves it on; holds nothing of its own."""

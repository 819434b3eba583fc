"""The only package that imports the two implementations: builds a row's model in either
framework, converts weights between them, and runs one training run's steps."""

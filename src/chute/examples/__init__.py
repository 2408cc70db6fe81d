"""Example projects (`chute init DIR --example NAME`): one folder each, with its chute.toml,
pipeline.py and generate.py; scaffold.py copies one and generates its data. from_file.py makes a
project from a sample file instead (`chute init DIR --from FILE`).
"""

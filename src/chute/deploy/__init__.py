"""Deployment targets: render what is needed to run a project's pipeline elsewhere (aws/)."""

"""Deployment targets: render what is needed to run a project's pipeline elsewhere (aws/).

    aws/   the AWS stack: SAM template, Terraform, Lambda handlers (see aws/__init__.py)
    ci.py  the CI/CD that validates, plans and deploys it per environment: a GitHub Actions
           workflow (OIDC) or a CodePipeline with CodeBuild buildspecs; their offline checks
"""

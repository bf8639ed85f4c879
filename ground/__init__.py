"""The ground floor: helpers every app uses (environment parsing, the log context, the strict input
grammar of forms, files and the API, form fields, admin record links, the metric instruments).
It imports no app of the project."""

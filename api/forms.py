from django import forms

from ground.form_fields import PlainTextField


class ApiTokenForm(forms.Form):
    name = PlainTextField(max_length=100, help_text="What the token is for, e.g. the script or app that uses it.")

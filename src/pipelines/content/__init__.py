"""Content: what a message says and how it is built.

- ``rendering``: the shipped default templates per language, or an org's saved one.
- ``html_text``: what a reader sees of an email's HTML: the plain-text part, visible links.
- ``sandbox`` and ``render_limits``: the Jinja2 sandbox and each render's time and size caps;
  ``sandbox_guards``: the checks on str methods and filters that could outgrow them.
- ``email_templates``: validating, saving and resetting an org's email templates.
- ``email_branding``: the logo, footer and opt-out link around every email.
- ``message``: the RFC 5322 message (MIME) for one rendered email.
- ``sms_text``: SMS text rules without a database: merge fields, DLT tags, the
  "- Company name" suffix, links, matching a DLT template, segments.
- ``sms_rendering``: an SMS rendered at send time, each value checked against its DLT
  variable (``DltMismatch`` else).
- ``sms_templates``: an org's three SMS templates, their DLT mapping and verification.
- ``sms_template_checks``: a trial render of an SMS template against its DLT text.
- ``dlt``: importing an org's DLT template registry (CSV or XLSX).
"""

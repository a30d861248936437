"""Evaluation of the assistant: dialogs written as scenarios (YAML), run through
the same pipeline as a channel, scored as a store owner would judge the replies.

scenarios.py loads and checks the files, runner.py plays them on a database
state of their own (a transaction rolled back), scoring.py judges each reply,
facts.py is the evaluator's own check that a reply names only products and
prices of the catalog, report.py prints the table and writes the JSON.
`manage.py eval` is the command.
"""

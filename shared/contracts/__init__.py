"""What the API accepts and answers: job specs and presets (specs.py), request and response
bodies (schemas.py), and the one error tree every layer raises (errors.py)."""

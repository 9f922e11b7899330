"""Publishing results in formats others read: Every Eval Ever JSON (aggregate and instance level), a static
`inspect view` bundle, and the Inspect Evals Register metadata (`evals/eval.yaml`). Everything written is
scrubbed of secrets (`selfaware.redact`)."""

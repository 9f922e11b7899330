"""Make-Me-Say (paper section 3.2): the game, its rules and codeword matching, the two-player solver, the
helper roles, the self-report questions and their scorers. The family plug-in is
`selfaware/families/make_me_say.py`; the task file `evals/make_me_say.py`; training sets
`selfaware.finetune.mms_data`."""

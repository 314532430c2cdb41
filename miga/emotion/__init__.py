"""Hidden emotion from micro-gestures: predict each video's state (iMiGUE: after a won or lost match) from its MG sequence.

`labels` reads `video_emotions.csv`; `events` builds each source's sequences per video; `features` turns a sequence
into the bag-of-MG and timing features; `model` holds the models, person-disjoint cross-validation and the baselines;
`pipeline` is the `emotion` stage on a project's files; `figures` draws its plots.
"""

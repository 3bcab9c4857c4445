"""The Argilla backend, split by role:

- `client`: Argilla's REST API with retries (`ArgillaAPI`);
- `datasets`: the dataset behind each group of tasks, its settings, and record payloads;
- `push`: tasks to records, idempotently; `pull`: responses to judgements, incrementally;
- `progress`: records completed and each annotator's answers; `simulate`: simulated
  annotators answering through the annotators' own endpoints;
- `backend`: `ArgillaBackend`, the `AnnotationBackend` that ties them to a workspace.

Where the server runs (embedded or external) is `traitforge.annotators.server`'s business.
"""

from traitforge.annotators.argilla.backend import ArgillaBackend

__all__ = ["ArgillaBackend"]

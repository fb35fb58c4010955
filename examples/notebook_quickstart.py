# %% [markdown]
# # hio from a notebook: send a sweep, read the results back as arrays
#
# Start a cluster with the `features` processor first (in a terminal, from the source tree):
#
#     build/bin/hio up --workers 1 --channels 2 --processor features
#
# then run the cells below (Jupyter, VS Code and Spyder read `# %%` as cell marks), or the whole file:
# `PYTHONPATH=connector/python python3 examples/notebook_quickstart.py`. NumPy is needed; pandas for the
# DataFrame (Debian: python3-pandas); matplotlib, if present, draws the clusters.

# %%
import os
import time

import numpy as np

import hio

MASTER = os.environ.get("HIO_MASTER", "http://127.0.0.1:8080")  # what `hio up` printed

# %% [markdown]
# ## A parameter sweep: two regimes of a stochastic model, three rates, four realizations each
# Each realization is an array shaped (species, time, voxels); its parameters go in `metadata["params"]`,
# which is what discovery groups realizations by.

# %%
rng = np.random.default_rng(0)
arrays, metadata = [], []
for regime in ("quiet", "burst"):
    for rate in (1.0, 2.0, 3.0):
        for _ in range(4):
            if regime == "quiet":
                counts = rng.poisson(2.0 + 0.1 * rate, size=(2, 120, 16))
            else:
                counts = rng.negative_binomial(2, 2.0 / (62.0 + rate), size=(2, 120, 16))
            arrays.append(counts.astype(np.float32))
            metadata.append({"species": ["mRNA", "protein"], "params": {"regime": regime, "rate": rate}})

with hio.Client(MASTER, source="quickstart") as client:
    batch = client.send_many(arrays, metadata=metadata)
print(batch)  # stored, queued (durably, in the master: stored later), failed, errors

# %% [markdown]
# ## Wait until every tuple of the batch is stored, and read its features as arrays

# %%
repo = hio.Repository(master=MASTER)  # the master says where its repository is
table = repo.wait(batch.tuple_ids, timeout=300)
print(table)  # FeatureTable(24 tuples x 67 features, ...)
print(table.values.shape, table.columns[:4], table.tuple_ids[:3])

# %% [markdown]
# ## The same as a pandas DataFrame: one row per tuple, features, source and `param.<name>` columns

# %%
try:
    df = repo.features(as_="pandas").loc[table.tuple_ids]  # every stored tuple; here only this batch's
    summary = df.groupby(["param.regime", "param.rate"])[["mRNA.mean_sm", "mRNA.cv_sm", "protein.mean_sm"]]
    print(summary.mean().round(2))
except ImportError:
    print("pandas is not installed: use the arrays (table.values, table.columns, table.param('rate'))")
    mean = table["mRNA.mean_sm"]
    for regime in ("quiet", "burst"):
        print(regime, mean[table.param("regime") == regime].mean().round(2))

# %% [markdown]
# ## Knowledge: the clusters of behaviour hio-discovery found
# `hio up` runs a discovery tick every 10 s: wait for a version that labels this batch.

# %%
deadline = time.monotonic() + 120
while True:
    try:
        knowledge = repo.knowledge()
        labels = knowledge.labels_for(table.tuple_ids)  # aligned to table's rows; -1: not clustered yet
        if (labels >= 0).all():
            break
    except hio.RepositoryError as e:
        if e.status != 404:  # 404: nothing published yet
            raise
    if time.monotonic() > deadline:
        raise TimeoutError("no knowledge labels this batch yet: is hio-discovery running (hio up starts it)?")
    time.sleep(1)

print(knowledge)
for c in knowledge.clusters:
    print(f"cluster {c['label']}: {c['size']} tuples, params {c.get('params_values', {})} "
          f"{c.get('params_ranges', {})}")
for regime in ("quiet", "burst"):
    print(regime, "->", sorted(set(labels[table.param("regime") == regime].tolist())))

# %% [markdown]
# ## Plot: the parameter points in the plane of their first two principal components, by cluster;
# and the dendrogram when SciPy is installed (`knowledge.linkage` is in SciPy's layout)

# %%
try:
    import matplotlib
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
    print("matplotlib is not installed: no plot")
if plt is not None:
    try:
        from scipy.cluster.hierarchy import dendrogram
    except ImportError:
        dendrogram = None
    fig, axes = plt.subplots(1, 2 if dendrogram else 1, figsize=(11 if dendrogram else 6, 4), squeeze=False)
    xy = knowledge.projection
    ax = axes[0][0]
    ax.scatter(xy[:, 0], xy[:, 1], c=knowledge.point_labels, cmap="tab10", s=60)
    for (x, y), name in zip(xy, knowledge.point_names):
        ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set(title=f"knowledge version {knowledge.version}: parameter points", xlabel="PC 1", ylabel="PC 2")
    if dendrogram and not knowledge.get("two_stage"):
        dendrogram(knowledge.linkage, labels=knowledge.point_names, ax=axes[0][1], leaf_rotation=90)
        axes[0][1].set(title=f"{knowledge.get('method', '')} linkage")
    fig.tight_layout()
    if matplotlib.get_backend().lower() == "agg":  # run as a script, no display
        fig.savefig("quickstart_clusters.png", dpi=100)
        print("wrote quickstart_clusters.png")
    else:
        plt.show()

"""Train, evaluate, register and serve the churn model (see docs/models.md).

OpenMP threads (XGBoost, scikit-learn) default to busy-waiting between parallel regions; on a
small shared machine (2 cores, Spark alongside) that made a 2-thread XGBoost fit up to 50x slower
than a 1-thread one. Passive waiting removes that; it must be set before libgomp is loaded, i.e.
before xgboost is imported, hence here.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

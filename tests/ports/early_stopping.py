# ruff: noqa -- a script as PyTorch users write it (globals handed in, their style kept)
# Regression with MSE, a validation split and early stopping; the best weights are kept with
# copy.deepcopy(model.state_dict()), restored, saved with torch.save and loaded back.
# The directory to save into is handed in as TMP_PATH.
import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

torch.manual_seed(42)
rng = np.random.default_rng(0)
X_np = rng.uniform(-2, 2, size=(400, 3)).astype(np.float32)
y_np = (np.sin(X_np[:, :1]) + 0.5 * X_np[:, 1:2] ** 2 - X_np[:, 2:3]
        + 0.1 * rng.normal(size=(400, 1))).astype(np.float32)
X = torch.from_numpy(X_np)
y = torch.from_numpy(y_np)
X_train, X_val = X[:300], X[300:]
y_train, y_val = y[:300], y[300:]
mean, std = X_train.mean(dim=0), X_train.std(dim=0)
X_train = (X_train - mean) / std
X_val = (X_val - mean) / std

model = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))
criterion = nn.MSELoss()
optimizer = optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)

best_val = float("inf")
best = None
best_epoch = -1
patience, bad_epochs = 10, 0
history = []
for epoch in range(300):
    model.train()
    perm = torch.randperm(X_train.size(0))
    for i in range(0, X_train.size(0), 50):
        idx = perm[i:i + 50]
        optimizer.zero_grad()
        loss = criterion(model(X_train[idx]), y_train[idx])
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        val_loss = criterion(model(X_val), y_val).item()
    history.append(val_loss)
    if val_loss < best_val - 1e-5:
        best_val = val_loss
        best = copy.deepcopy(model.state_dict())
        best_epoch = epoch
        bad_epochs = 0
    else:
        bad_epochs += 1
        if bad_epochs >= patience:
            print(f"early stop at epoch {epoch}, best {best_val:.4f} at {best_epoch}")
            break

last_val = history[-1]
model.load_state_dict(best)
model.eval()
with torch.no_grad():
    restored_val = criterion(model(X_val), y_val).item()

path = os.path.join(TMP_PATH, "best.pt")
torch.save(best, path)
fresh = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))
fresh.load_state_dict(torch.load(path))
fresh.eval()
with torch.no_grad():
    loaded_val = criterion(fresh(X_val), y_val).item()
    same = torch.allclose(fresh(X_val), model(X_val))
torch.save({"epoch": best_epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict()},
           os.path.join(TMP_PATH, "checkpoint.pt"))
checkpoint = torch.load(os.path.join(TMP_PATH, "checkpoint.pt"))
optimizer.load_state_dict(checkpoint["optimizer"])
RESULTS = {"best_val": best_val, "restored_val": restored_val, "loaded_val": loaded_val,
           "last_val": last_val, "first_val": history[0], "same": same,
           "best_epoch": best_epoch, "checkpoint_epoch": checkpoint["epoch"],
           "epochs_run": len(history), "baseline": y_val.var(unbiased=False).item()}

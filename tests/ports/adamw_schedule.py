# ruff: noqa -- a script as PyTorch users write it (globals handed in, their style kept)
# A fine-tuning style loop: AdamW, linear warmup by LambdaLR then CosineAnnealingLR,
# gradient clipping and gradient accumulation.
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim import AdamW
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
n, d_in, n_classes = 512, 20, 4
X = torch.randn(n, d_in)
w_true = torch.randn(d_in, n_classes)
y = (X @ w_true).argmax(dim=1)
dataset = TensorDataset(X, y)
loader = DataLoader(dataset, batch_size=32, shuffle=True, drop_last=True)


class MLP(nn.Module):
    def __init__(self, d_in, hidden, d_out, p=0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_in, hidden),
            nn.GELU(),
            nn.Dropout(p),
            nn.LayerNorm(hidden),
            nn.Linear(hidden, d_out),
        )

    def forward(self, x):
        return self.net(x)


model = MLP(d_in, 64, n_classes)
decay, no_decay = [], []
for name, param in model.named_parameters():
    if not param.requires_grad:
        continue
    if param.ndim < 2 or "norm" in name or name.endswith(".bias"):
        no_decay.append(param)
    else:
        decay.append(param)
optimizer = AdamW([
    {"params": decay, "weight_decay": 0.01},
    {"params": no_decay, "weight_decay": 0.0},
], lr=3e-3, betas=(0.9, 0.999), eps=1e-8)

accum_steps = 4
epochs = 6
steps_per_epoch = len(loader) // accum_steps
warmup_steps = steps_per_epoch
total_steps = epochs * steps_per_epoch
warmup = LambdaLR(optimizer, lr_lambda=lambda step: min(1.0, (step + 1) / warmup_steps))
cosine = CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps, eta_min=1e-5)
max_grad_norm = 1.0

lrs, epoch_losses, grad_norms = [], [], []
global_step = 0
for epoch in range(epochs):
    model.train()
    running = 0.0
    optimizer.zero_grad(set_to_none=True)
    for i, (xb, yb) in enumerate(loader):
        logits = model(xb)
        loss = F.cross_entropy(logits, yb, label_smoothing=0.05) / accum_steps
        loss.backward()
        running += loss.item()
        if (i + 1) % accum_steps == 0:
            total_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            grad_norms.append(float(total_norm))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if global_step < warmup_steps:
                warmup.step()
            else:
                cosine.step()
            global_step += 1
            lrs.append(optimizer.param_groups[0]["lr"])
    epoch_losses.append(running * accum_steps / len(loader))
    print(f"epoch {epoch} loss {epoch_losses[-1]:.4f} lr {optimizer.param_groups[0]['lr']:.2e}")

model.eval()
with torch.no_grad():
    accuracy = (model(X).argmax(dim=1) == y).float().mean().item()
print(f"accuracy {accuracy:.3f}")
expected_final_lr = 1e-5 + (3e-3 - 1e-5) * (1 + math.cos(math.pi)) / 2
RESULTS = {"lrs": lrs, "epoch_losses": epoch_losses, "accuracy": accuracy,
           "grad_norms": grad_norms, "expected_final_lr": expected_final_lr}

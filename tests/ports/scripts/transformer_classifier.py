# A small Transformer sequence classifier as people write one for a toy task: token
# sequences of different lengths padded to a block, label = whether token 1 occurs more
# often than token 2. nn.Embedding plus a learned position table (nn.Parameter), a 2-layer
# nn.TransformerEncoder (pre-norm, GELU, batch_first) fed a causal mask and a key padding
# mask, masked mean pooling, LayerNorm, a Linear head, cross_entropy with label smoothing,
# AdamW with parameter groups (no decay on biases and norms), a LambdaLR warmup,
# clip_grad_norm_, a torch.Generator seeding random_split and the DataLoader's shuffle.
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, random_split

LOSSES = []
torch.manual_seed(13)
vocab, block, pad = 8, 12, 0


class CountTask(Dataset):
    def __init__(self, n):
        self.lengths = torch.randint(4, block + 1, (n,))
        self.tokens = torch.randint(1, vocab, (n, block))
        positions = torch.arange(block).expand(n, block)
        self.tokens[positions >= self.lengths.unsqueeze(1)] = pad
        self.labels = ((self.tokens == 1).sum(1) > (self.tokens == 2).sum(1)).long()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.tokens[i], self.labels[i]


class Classifier(nn.Module):
    def __init__(self, d_model=32, nhead=4, num_layers=2):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model, padding_idx=pad)
        self.pos = nn.Parameter(torch.zeros(1, block, d_model))
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=64, dropout=0.1,
                                           activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model),
                                             enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 2)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, tokens):
        padding = tokens == pad                                            # (B, T)
        T = tokens.size(1)
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # True: hidden
        x = self.embed(tokens) * math.sqrt(self.embed.embedding_dim) + self.pos[:, :T]
        x = self.encoder(x, mask=causal, src_key_padding_mask=padding)    # (B, T, C)
        keep = (~padding).unsqueeze(-1).float()
        pooled = (x * keep).sum(1) / keep.sum(1).clamp(min=1)
        return self.head(pooled)


generator = torch.Generator().manual_seed(42)
train_set, val_set = random_split(CountTask(640), [0.75, 0.25], generator=generator)
train_loader = DataLoader(train_set, batch_size=32, shuffle=True, generator=generator,
                          drop_last=True)
val_loader = DataLoader(val_set, batch_size=80)

model = Classifier()
decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "pos" not in n]
no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or "pos" in n]
optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                               {"params": no_decay, "weight_decay": 0.0}],
                              lr=3e-3, betas=(0.9, 0.98))
warmup = 10
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                              lambda step: min(1.0, (step + 1) / warmup))
LOSSES.append([(n, list(p.shape)) for n, p in model.named_parameters()])

for epoch in range(3):
    model.train()
    for tokens, labels in train_loader:
        logits = model(tokens)
        loss = F.cross_entropy(logits, labels, label_smoothing=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        scheduler.step()
        LOSSES.extend([loss.item(), norm.item()])
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for tokens, labels in val_loader:
            predictions = model(tokens).argmax(dim=-1)
            correct += (predictions == labels).sum().item()
            total += labels.numel()
    print(f"epoch {epoch}: loss {loss.item():.4f} val accuracy {correct / total:.3f} "
          f"lr {scheduler.get_last_lr()[0]:.2e}")
    LOSSES.append(correct / total)
with torch.no_grad():
    probabilities = F.softmax(model(val_set[0][0].unsqueeze(0)), dim=-1)
LOSSES.extend(probabilities.squeeze(0).tolist())

# Karpathy's makemore MLP (part 2): a character-level model of names with an embedding
# table C, one tanh hidden layer, cross-entropy, explicit parameters updated through .data,
# then names sampled with torch.multinomial. The names are a small list written here.
import torch
import torch.nn.functional as F

LOSSES = []
words = ("emma olivia ava isabella sophia charlotte mia amelia harper evelyn abigail emily "
         "elizabeth mila ella avery sofia camila aria scarlett victoria madison luna grace "
         "chloe penelope layla riley zoey nora lily eleanor hannah lillian addison aubrey "
         "ellie stella natalie zoe leah hazel violet aurora savannah audrey brooklyn bella "
         "claire skylar lucy paisley everly anna caroline nova genesis emilia kennedy").split()
chars = sorted(set("".join(words)))
stoi = {s: i + 1 for i, s in enumerate(chars)}
stoi["."] = 0
itos = {i: s for s, i in stoi.items()}
vocab = len(stoi)
block_size = 3


def build_dataset(names):
    X, Y = [], []
    for w in names:
        context = [0] * block_size
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X), torch.tensor(Y)


Xtr, Ytr = build_dataset(words)
g = torch.Generator().manual_seed(2147483647)
C = torch.randn((vocab, 10), generator=g)
W1 = torch.randn((block_size * 10, 100), generator=g) * 0.2
b1 = torch.randn(100, generator=g) * 0.01
W2 = torch.randn((100, vocab), generator=g) * 0.01
b2 = torch.randn(vocab, generator=g) * 0
parameters = [C, W1, b1, W2, b2]
for p in parameters:
    p.requires_grad = True
print(sum(p.nelement() for p in parameters), "parameters")

for i in range(300):
    ix = torch.randint(0, Xtr.shape[0], (32,), generator=g)
    emb = C[Xtr[ix]]                                   # (32, 3, 10)
    h = torch.tanh(emb.view(-1, block_size * 10) @ W1 + b1)
    logits = h @ W2 + b2
    loss = F.cross_entropy(logits, Ytr[ix])
    for p in parameters:
        p.grad = None
    loss.backward()
    lr = 0.1 if i < 200 else 0.01
    for p in parameters:
        p.data += -lr * p.grad
    LOSSES.append(loss.item())

samples = []
for _ in range(5):
    out, context = [], [0] * block_size
    while True:
        emb = C[torch.tensor([context])]
        h = torch.tanh(emb.view(1, -1) @ W1 + b1)
        probs = F.softmax(h @ W2 + b2, dim=1)
        ix = torch.multinomial(probs, num_samples=1, generator=g).item()
        context = context[1:] + [ix]
        if ix == 0 or len(out) > 20:
            break
        out.append(itos[ix])
    samples.append("".join(out))
print(samples)
LOSSES.append(samples)

# A word-level language model in the shape of pytorch/examples' word_language_model: a
# corpus tokenised into a dictionary, batchify / get_batch over bptt windows, an RNNModel of
# nn.Embedding -> nn.Dropout -> nn.LSTM (2 layers, dropout between them) -> nn.Linear with
# the decoder's weight tied to the embedding's, hidden state repackaged (detached) between
# windows, torch.nn.utils.clip_grad_norm_, a hand-written SGD step on p.data, perplexity by
# math.exp, lr annealed when validation stops improving. Then a GRU tagger over sentences of
# different lengths through pad_sequence / pack_padded_sequence / pad_packed_sequence.
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

LOSSES = []
torch.manual_seed(5)
text = """the cat sat on the mat . the dog sat on the log . a cat saw a dog on the mat .
the dog ran to the cat . a bird sat on the dog . the cat ran from the bird to the log .
a dog saw the bird on a log . the bird ran on the mat and the cat sat . """ * 6


class Dictionary:
    def __init__(self):
        self.word2idx, self.idx2word = {}, []

    def add_word(self, word):
        if word not in self.word2idx:
            self.idx2word.append(word)
            self.word2idx[word] = len(self.idx2word) - 1
        return self.word2idx[word]

    def __len__(self):
        return len(self.idx2word)


dictionary = Dictionary()
ids = torch.tensor([dictionary.add_word(w) for w in text.split() + ["<eos>"]],
                   dtype=torch.int64)
cut = int(0.8 * len(ids))
train_ids, val_ids = ids[:cut], ids[cut:]


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous()


bptt = 12
train_data, val_data = batchify(train_ids, 8), batchify(val_ids, 4)


def get_batch(source, i):
    seq_len = min(bptt, len(source) - 1 - i)
    return source[i:i + seq_len], source[i + 1:i + 1 + seq_len].reshape(-1)


class RNNModel(nn.Module):
    def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.2, tie_weights=True):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            if nhid != ninp:
                raise ValueError("When using the tied flag, nhid must be equal to emsize")
            self.decoder.weight = self.encoder.weight
        self.init_weights()
        self.nhid, self.nlayers = nhid, nlayers

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output).view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (weight.new_zeros(self.nlayers, bsz, self.nhid),
                weight.new_zeros(self.nlayers, bsz, self.nhid))


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


ntokens = len(dictionary)
model = RNNModel(ntokens, 24, 24, 2)
criterion = nn.NLLLoss()
LOSSES.append(sum(p.numel() for p in model.parameters()))   # the tied weight counts once


def evaluate(data_source):
    model.eval()
    total_loss = 0.0
    hidden = model.init_hidden(4)
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, bptt):
            data, targets = get_batch(data_source, i)
            output, hidden = model(data, hidden)
            hidden = repackage_hidden(hidden)
            total_loss += len(data) * criterion(output, targets).item()
    return total_loss / (len(data_source) - 1)


def train(lr):
    model.train()
    hidden = model.init_hidden(8)
    for i in range(0, train_data.size(0) - 1, bptt):
        data, targets = get_batch(train_data, i)
        model.zero_grad()
        hidden = repackage_hidden(hidden)
        output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        total_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        LOSSES.extend([loss.item(), total_norm.item()])


lr, best_val_loss = 5.0, None
for epoch in range(1, 5):
    train(lr)
    val_loss = evaluate(val_data)
    print(f"| end of epoch {epoch} | valid loss {val_loss:5.2f} | "
          f"valid ppl {math.exp(val_loss):8.2f}")
    LOSSES.append(val_loss)
    if not best_val_loss or val_loss < best_val_loss:
        best_val_loss = val_loss
    else:
        lr /= 4.0
LOSSES.append(model.decoder.weight.data_ptr() == model.encoder.weight.data_ptr())

# generation: sample words from the softmax of the scores divided by a temperature
model.eval()
hidden = model.init_hidden(1)
word = torch.randint(ntokens, (1, 1), dtype=torch.long)
words = []
with torch.no_grad():
    for _ in range(10):
        output, hidden = model(word, hidden)
        word_weights = output.squeeze().div(0.8).exp()
        word_idx = torch.multinomial(word_weights, 1)[0]
        word.fill_(word_idx)
        words.append(dictionary.idx2word[word_idx])
print(" ".join(words))
LOSSES.append(words)


# a GRU tagger (noun or not) over padded sentences of different lengths
class Tagger(nn.Module):
    def __init__(self, ntoken, emb, hidden):
        super().__init__()
        self.embedding = nn.Embedding(ntoken, emb, padding_idx=0)
        self.gru = nn.GRU(emb, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, 2)

    def forward(self, padded, lengths):
        packed = pack_padded_sequence(self.embedding(padded), lengths, batch_first=True,
                                      enforce_sorted=False)
        output, h_n = self.gru(packed)
        output, out_lengths = pad_packed_sequence(output, batch_first=True)
        return self.out(output), out_lengths, h_n


nouns = {"cat", "dog", "mat", "log", "bird"}
sentences = [s.split() for s in text.split(" . ")[:7] if s.strip()]
tokens = [torch.tensor([dictionary.word2idx[w] + 1 for w in s]) for s in sentences]
tags = [torch.tensor([int(w in nouns) for w in s]) for s in sentences]
lengths = torch.tensor([len(t) for t in tokens])
padded = pad_sequence(tokens, batch_first=True)
padded_tags = pad_sequence(tags, batch_first=True, padding_value=-100)
tagger = Tagger(ntokens + 1, 12, 10)
optimizer = torch.optim.Adam(tagger.parameters(), lr=0.02)
for _step in range(15):
    scores, out_lengths, h_n = tagger(padded, lengths)
    loss = F.cross_entropy(scores.reshape(-1, 2), padded_tags[:, :scores.size(1)].reshape(-1),
                           ignore_index=-100)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    LOSSES.append(loss.item())
LOSSES.extend([list(scores.shape), out_lengths.tolist(), list(h_n.shape)])

# The pytorch/tutorials "classifying names with a character-level RNN" in its newer form,
# with only `import torch` (and `from torch import nn`): names one-hot encoded letter by
# letter into (len, 1, n_letters) tensors, a torch.utils.data.Dataset split with
# torch.utils.data.random_split and a seeded torch.Generator, an nn.RNN whose last hidden
# state goes through nn.Linear and nn.LogSoftmax, NLLLoss summed over a mini-batch of
# variable-length names before one backward, nn.utils.clip_grad_norm_, SGD; prediction by
# output.topk(1) and a confusion matrix filled item by item and normalised row by row.
import random
import string

import torch
from torch import nn

LOSSES = []
torch.manual_seed(2024)
random.seed(2024)
allowed_characters = string.ascii_letters + " .,;'"
n_letters = len(allowed_characters)
NAMES = {
    "English": "smith jones taylor brown williams wilson johnson davies robinson wright "
               "thompson evans walker white roberts green hall wood jackson clarke",
    "Italian": "rossi russo ferrari esposito bianchi romano colombo ricci marino greco "
               "bruno gallo conti deluca mancini costa giordano rizzo lombardi moretti",
    "Japanese": "sato suzuki takahashi tanaka watanabe ito yamamoto nakamura kobayashi kato "
                "yoshida yamada sasaki yamaguchi matsumoto inoue kimura hayashi shimizu mori",
    "Polish": "nowak kowalski wisniewski wojcik kowalczyk kaminski lewandowski zielinski "
              "szymanski wozniak dabrowski kozlowski jankowski mazur kwiatkowski krawczyk "
              "piotrowski grabowski nowakowski pawlowski",
}


def line_to_tensor(line):
    tensor = torch.zeros(len(line), 1, n_letters)
    for li, letter in enumerate(line):
        tensor[li][0][allowed_characters.find(letter)] = 1
    return tensor


class NamesDataset(torch.utils.data.Dataset):
    def __init__(self):
        self.labels_uniq = sorted(NAMES)
        self.data, self.data_tensors, self.labels, self.labels_tensors = [], [], [], []
        for label in self.labels_uniq:
            for name in NAMES[label].split():
                self.data.append(name)
                self.data_tensors.append(line_to_tensor(name.capitalize()))
                self.labels.append(label)
                self.labels_tensors.append(torch.tensor([self.labels_uniq.index(label)],
                                                        dtype=torch.long))

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        return (self.labels_tensors[idx], self.data_tensors[idx], self.labels[idx],
                self.data[idx])


alldata = NamesDataset()
train_set, test_set = torch.utils.data.random_split(
    alldata, [0.75, 0.25], generator=torch.Generator().manual_seed(2024))
LOSSES.append([len(train_set), len(test_set)])


class CharRNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.rnn = nn.RNN(input_size, hidden_size)
        self.h2o = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, line_tensor):
        rnn_out, hidden = self.rnn(line_tensor)
        return self.softmax(self.h2o(hidden[0]))


def label_from_output(output, output_labels):
    top_n, top_i = output.topk(1)
    label_i = top_i[0].item()
    return output_labels[label_i], label_i


rnn = CharRNN(n_letters, 32, len(alldata.labels_uniq))
criterion = nn.NLLLoss()
optimizer = torch.optim.SGD(rnn.parameters(), lr=0.15)
for epoch in range(1, 7):
    rnn.zero_grad()
    batches = list(range(len(train_set)))
    random.shuffle(batches)
    batches = [batches[i:i + 12] for i in range(0, len(batches), 12)]
    current_loss = 0
    for batch in batches:
        batch_loss = 0
        for i in batch:
            label_tensor, text_tensor, label, text = train_set[i]
            output = rnn.forward(text_tensor)
            batch_loss += criterion(output, label_tensor)
        batch_loss.backward()
        nn.utils.clip_grad_norm_(rnn.parameters(), 3)
        optimizer.step()
        optimizer.zero_grad()
        current_loss += batch_loss.item() / len(batch)
        LOSSES.append(batch_loss.item())
    print(f"{epoch} ({epoch / 6:.0%}): average batch loss = {current_loss / len(batches):.4f}")

confusion = torch.zeros(len(alldata.labels_uniq), len(alldata.labels_uniq))
rnn.eval()
with torch.no_grad():
    for i in range(len(test_set)):
        label_tensor, text_tensor, label, text = test_set[i]
        output = rnn(text_tensor)
        guess, guess_i = label_from_output(output, alldata.labels_uniq)
        label_i = alldata.labels_uniq.index(label)
        confusion[label_i][guess_i] += 1
for i in range(len(alldata.labels_uniq)):
    denom = confusion[i].sum()
    if denom > 0:
        confusion[i] = confusion[i] / denom
LOSSES.append(confusion.tolist())
print("accuracy on the held-out names:", confusion.diag().mean().item())

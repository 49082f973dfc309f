import sys; sys.path.insert(0, "/work/main/tests")
from tiny_models import tiny_model
from tiny_tokenizer import char_tokenizer
m,_ = tiny_model("llama"); m.save_pretrained("tiny"); char_tokenizer().save_pretrained("tiny")

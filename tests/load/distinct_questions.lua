-- wrk script: every request is a new question (a question from the list plus one short word: two
-- letters from the run's start time, a letter for the wrk thread, and the request's number in
-- letters), so the server's query cache does not answer and each request pays for embedding. Each
-- wrk thread runs its own copy of this script: without the thread's letter the threads would ask the
-- same questions, and without the time a second run would repeat the first (but for a 1-in-676
-- chance). Letters, not digits: the model's tokenizer splits digits one by one, and every token of
-- suffix is time a real question would not cost (about 3 tokens here; a timestamp would be 16).
-- usage: wrk -t2 -c32 -d60s --latency -s tests/load/distinct_questions.lua http://127.0.0.1:8080
local questions = {
  "How do protein language models learn the structure of proteins without any labels at all",
  "What did the guest say about running bare metal servers instead of renting from big clouds",
  "¿Cómo se defienden los soldados de los drones baratos en el frente de batalla?",
  "Why do engineering fundamentals matter more now that models write so much of the code",
  "¿Qué opina el invitado sobre el futuro de las revisiones de código con agentes?",
  "How long can an afternoon nap be without ruining the night's sleep for most adults",
  "¿Por qué a algunas personas el café no les quita el sueño y a otras sí?",
  "What gear matters most for cycling to work through a cold and icy winter",
  "¿Cómo se combaten los pulgones en un huerto urbano sin usar venenos químicos?",
  "Which tricks make video generation fast enough for real time use in a product",
}
local counter = 0
local threads = 0

-- Runs in the main script state once per wrk thread, before the thread starts.
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

-- `n` in base 26, written with the letters a-z (0 is "a").
local function letters(n)
  local s = ""
  repeat
    s = string.char(97 + n % 26) .. s
    n = math.floor(n / 26)
  until n == 0
  return s
end

-- Runs in each thread's own state; `id` is what setup gave it.
function init(args)
  local run = letters(os.time() % 676)
  if #run < 2 then run = "a" .. run end
  prefix = run .. letters(id or 0)
end

local function encode(s)
  return (s:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

request = function()
  counter = counter + 1
  local q = questions[(counter % #questions) + 1] .. " " .. prefix .. letters(counter)
  return wrk.format("GET", "/v1/search?k=10&q=" .. encode(q))
end

-- wrk script: every request is a new question (a question from the list plus a counter), so the
-- server's query cache never answers and each request pays for embedding.
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

local function encode(s)
  return (s:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

request = function()
  counter = counter + 1
  local q = questions[(counter % #questions) + 1] .. " " .. counter
  return wrk.format("GET", "/v1/search?k=10&q=" .. encode(q))
end

"""Remote image providers (OpenAI, Gemini, fal.ai) over httpx: plain async functions, no Ray imports."""

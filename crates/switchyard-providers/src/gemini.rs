//! Google AI Studio (Gemini) generateContent codec.

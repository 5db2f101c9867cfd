#!/usr/bin/env python3
"""Writes a CSV of N sound-effect prompts: varied text, about one row in ten quoted
with commas, one in fifty with a line break inside its prompt, an extra column."""
import random, sys

rows, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(42)
things = ["door", "rain", "engine", "crowd", "sword", "laser", "wind", "river", "bell", "glass",
          "footsteps", "thunder", "keyboard", "train", "bird", "fire", "coin", "alarm", "wave", "drum"]
moods = ["soft", "distant", "sharp", "muffled", "echoing", "metallic", "warm", "harsh", "slow", "rapid"]
places = ["in a cave", "under water", "in a cathedral", "on a city street", "in a forest at night",
          "inside a spaceship", "in a small kitchen", "on a windy beach", "in a stairwell", "in a stadium"]
with open(path, "w", newline="") as out:
    out.write("id,prompt,audio_length,scene\n")
    for i in range(rows):
        prompt = f"{rng.choice(moods)} {rng.choice(things)} {rng.choice(places)} take {i}"
        r = rng.random()
        if r < 0.02:
            prompt = f'"{prompt}\nthen silence, ""fade out"""'
        elif r < 0.12:
            prompt = f'"{prompt}, with a short tail"'
        length = "" if rng.random() < 0.1 else str(rng.randint(1, 60))
        out.write(f"sfx-{i},{prompt},{length},scene {i % 97}\n")

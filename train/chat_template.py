"""The project's chat template: Qwen3/Hermes layout, no ``<think>`` blocks, with generation markers.

Why our own template rather than a Hub one: the tiny from-scratch model has no template of its own, and the
layout must match what :mod:`envgen.llm.toolcall_parse` parses back (``<tool_call>`` blocks holding
``{"name": ..., "arguments": {...}}``). Keeping the Qwen layout means a real Qwen model sees familiar text.

The assistant's content, tool calls and closing ``<|im_end|>`` sit inside ``{% generation %}`` so that
``apply_chat_template(..., return_assistant_tokens_mask=True)`` marks exactly the tokens the model must learn
to produce (including the stop token). The ``<|im_start|>assistant\\n`` header stays outside: at inference
it is the generation prompt, so the model never has to produce it. Consecutive tool results are grouped into
one user turn, as Qwen does.

Tool-call arguments may be a mapping (rendered with ``tojson``) or JSON text as OpenAI sends it (emitted as-is
when it looks like a JSON object, JSON-quoted otherwise so that the line stays valid JSON). Callers normally
convert them to mappings first with :func:`envgen.llm.toolcall_parse.arguments_as_objects`, so training
and inference render byte-identical tool calls.

A model without a template of its own (a base checkpoint such as Gemma 3 270M) gets this layout too, with
*its own* turn tokens when its vocabulary has them as single special tokens (``<start_of_turn>`` and
``<end_of_turn>`` for Gemma): a marker spelt as six word pieces would cost tokens in every turn and could not
serve as the stop token. The tokenizer's ``bos_token``, when it has one, opens the text (Gemma expects it;
the tiny tokenizer and Qwen have none).
"""

from __future__ import annotations

from envgen.llm.turn_markers import QWEN_MARKERS, TurnMarkers

TEMPLATE_TEXT = """
{{- bos_token if bos_token else '' }}
{%- set has_system = messages and messages[0].role == 'system' %}
{%- set system_text = (messages[0].content if has_system and messages[0].content is string else '') %}
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if system_text %}{{- system_text + '\\n\\n' }}{%- endif %}
    {{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n' }}
    {{- 'You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}
    {%- for tool in tools %}
        {{- '\\n' }}{{- tool | tojson }}
    {%- endfor %}
    {{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments ' }}
    {{- 'within <tool_call></tool_call> XML tags:\\n<tool_call>\\n' }}
    {{- '{"name": <function-name>, "arguments": <args-json-object>}\\n</tool_call><|im_end|>\\n' }}
{%- elif has_system %}
    {{- '<|im_start|>system\\n' + system_text + '<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
    {%- set text = message.content if message.content is string else '' %}
    {%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + text + '<|im_end|>\\n' }}
    {%- elif message.role == 'assistant' %}
        {{- '<|im_start|>assistant\\n' }}
        {%- generation %}
        {{- text }}
        {%- for tool_call in (message.tool_calls or []) %}
            {%- set call = tool_call.function if tool_call.function is defined else tool_call %}
            {%- if text or not loop.first %}{{- '\\n' }}{%- endif %}
            {{- '<tool_call>\\n{"name": ' }}{{- call.name | tojson }}{{- ', "arguments": ' }}
            {%- set args = call.arguments %}
            {%- if args is string and args | trim == '' %}
                {{- '{}' }}
            {%- elif args is string and (args | trim)[:1] == '{' %}
                {{- args }}
            {%- elif args is none or args is undefined %}
                {{- '{}' }}
            {%- else %}
                {{- args | tojson }}
            {%- endif %}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>' }}
        {%- endgeneration %}
        {{- '\\n' }}
    {%- elif message.role == 'tool' %}
        {%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' + text + '\\n</tool_response>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
""".strip()


def chat_template(markers: TurnMarkers = QWEN_MARKERS) -> str:
    """The project's template with `markers` as its turn tokens."""
    return TEMPLATE_TEXT.replace(QWEN_MARKERS.start, markers.start).replace(QWEN_MARKERS.end, markers.end)


CHAT_TEMPLATE = chat_template()
